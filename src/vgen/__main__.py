from vgen.app import main

main()
