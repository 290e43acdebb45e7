"""Test stand-in for Google's ``google`` namespace (tests/fake_colab is put on a kernel's PYTHONPATH)."""
__path__ = __import__("pkgutil").extend_path(__path__, __name__)  # type: ignore[name-defined]
