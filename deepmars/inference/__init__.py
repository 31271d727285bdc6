"""What predict.py, landmarks.py classify and evaluate.py share to classify decoded images.

- ``classifier``: the ``Classifier`` interface (calibrated probabilities for decoded uint8 images)
  every run uses, and its eager PyTorch implementation (on the run's device), the reference;
- ``exported``: the same interface on ONNX Runtime and OpenVINO, running the exported graph (CPU);
- ``runtimes``: the runtime and precision names, what is installed, what ``auto`` picks on which device;
- ``opening``: ``open_classifier``, the one place a run gets its classifier (export found or made,
  checked against eager on the run's first batch), and ``make_classifier``, what builds it;
- ``agreement``: a runtime's answers against eager fp32, and the fp32 tolerance;
- ``logits``: a network's logits for decoded images in batches, with test-time views (training's
  validation, evaluation and WiSE-FT use it too);
- ``model``: a bundle made ready for eager inference (device, threads, eval mode, memory format);
- ``ranking``: probabilities -> predicted class, confidence and top-k, rounded as the catalog stores them;
- ``files``: a file's identity (path, size, mtime, content hash) read from one open file;
- ``listing``: globs whose ``**`` does not follow folder symlinks, and folders that cannot be read reported;
- ``failures``: the count and first few failed files, as the end-of-run report lists them.
"""
