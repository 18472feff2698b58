"""The ``torchspike`` application: typed configuration, recipes, the training loop, run
directories, evaluation, plots and export. The library never imports this package."""
