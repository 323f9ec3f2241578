"""`python -m stack` (what `make run` runs): the embedded stack, the worker and the demo portfolio."""

from stack.process import exit_process
from stack.run import main

exit_process(main())
