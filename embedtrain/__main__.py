from embedtrain.cli import main

main()
