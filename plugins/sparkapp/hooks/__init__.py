"""Both backends, side by side: :mod:`~sparkapp.hooks.kubernetes` and :mod:`~sparkapp.hooks.local`."""
