"""Real-browser tests: JupyterLab and Notebook 7 in Debian's headless Chromium (marker ``browser``)."""
