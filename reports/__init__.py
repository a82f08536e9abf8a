"""Reports on finished searches: the only code that reads the CIFAR-100 test split."""
