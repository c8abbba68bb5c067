"""Browser tests: the agent console in Debian's chromium, driven by Playwright."""
