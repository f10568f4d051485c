"""Motion data: the common sample type, motion resampling and loaders for real capture formats."""
