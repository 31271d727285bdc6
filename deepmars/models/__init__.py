"""Network construction, pretrained weights and trained-model bundles."""
