"""Pure collections rules: models, strategy, schedule, promises. No I/O; safe inside workflows."""
