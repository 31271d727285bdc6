"""What predict.py and landmarks.py classify share to turn images into catalog rows.

- ``model``: a bundle made ready for inference (device, threads, eval mode, memory format), its catalog
  record, calibrated probabilities of decoded images;
- ``ranking``: probabilities -> predicted class, confidence and top-k, rounded as the catalog stores them;
- ``files``: a file's identity (path, size, mtime, content hash) read from one open file;
- ``listing``: globs whose ``**`` does not follow folder symlinks, and folders that cannot be read reported;
- ``failures``: the count and first few failed files, as the end-of-run report lists them.
"""
