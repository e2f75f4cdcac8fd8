"""Running effects: every front end plans what the user asked for once (:mod:`.plan`), then executes the plan
(:mod:`.execute`) into a :class:`~.result.Result`; the headless API (:mod:`.api`), chain recipes
(:mod:`.recipes`) and resumable checkpoints (:mod:`.checkpoint`) are built on those two."""
