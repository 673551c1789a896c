"""
The hook for plain rl_zoo3 commands: ``python -m rl_zoo3.train ... --gym-packages sb3_lsp.zoo.plugin``.

rl_zoo3 runs code of a plugin only by importing the modules named by ``--gym-packages``, so
importing this module (and only this one) installs the plugin: :func:`sb3_lsp.zoo.register`.
"""

from sb3_lsp.zoo import register

register()
