"""The .dl language server (``dlc lsp``), on pygls."""
