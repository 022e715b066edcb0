"""Applications built on fw: composition roots that may import framework, live, reports and
strategies together (the import contracts keep live and reports apart; an app joins them).

- :mod:`apps.dashboard`: the ``fw dashboard`` Streamlit monitor of a paper run.
- :mod:`apps.launch`: start that app in a subprocess and wait until it answers.
"""
