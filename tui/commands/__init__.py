"""One module per ``gradfx`` sub-command."""
