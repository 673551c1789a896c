from sb3_lsp.hierarchy.layerwise import main

main()
