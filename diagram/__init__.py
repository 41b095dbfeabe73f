"""Diagrams of compiled networks (``dlc draw``): SVG laid out by the project itself, DOT
text, and HTML with tooltips."""
