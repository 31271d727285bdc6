"""Reading the published data sets: labels, class names, images, metadata, data roots."""
