"""A stand-in for ``google.colab``, for tests only (never installed, never a real Colab).

Colab imports ``google.colab`` in every kernel; the tests do that in an IPython startup
file, so ``"google.colab" in sys.modules`` is true as in Colab.  Only ``userdata`` exists.
"""
