"""Real-browser tests: JupyterLab in Chromium, driven by Playwright."""
