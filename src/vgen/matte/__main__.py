from vgen.matte.app import main

main()
