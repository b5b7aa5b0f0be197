"""What the pages share, by job: ``navigation`` (the page list, lecture mode, the hand-over to the entry
script), ``picker`` (the sidebar's model picker and the test-image picker), ``presentation`` (presentation
mode), ``data`` (cached data, labels and metrics) and ``compute`` (the shared memo and the cached teaching
computations). UI only; logic lives in pixelcnn. A package (``pages/common/``), not a file in ``pages/``, so
that Streamlit's legacy multipage mode, which lists every ``pages/*.py``, never shows it as a page."""
