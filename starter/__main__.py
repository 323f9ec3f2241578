from stack.process import exit_process  # skips interpreter teardown: temporalio/sdk-python#300
from starter.cli import main

exit_process(main())
