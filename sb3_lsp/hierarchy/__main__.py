from sb3_lsp.zoo.layerwise import main

main()
