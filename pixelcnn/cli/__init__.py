"""The command line, one module per command group; ``python -m pixelcnn`` assembles them."""
