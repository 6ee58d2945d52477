"""Streamlit page scripts (run by path through st.navigation, not imported)."""
