"""``export_model.py``: a trained model exported once for the fast runtimes, checked and measured (``command``)."""
