"""What plugin authors import: the action API (``BaseAction``, ``@action``, inference, steps, the
context and its logger, ``ctx.env``).  Nothing here knows how a run is ordered: that is ``contract/``."""
