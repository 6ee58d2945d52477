"""The script ``streamlit run`` executes: it only calls :func:`spendscope.dashboard.app.main`.

It lives here, not beside ``pages/``, because Streamlit treats a ``pages/`` folder next to the main
script as old-style multipage navigation, which drops the sidebar filters between reruns.
"""

from spendscope.dashboard.app import main

main()
