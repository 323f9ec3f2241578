"""Running the product: settings, the embedded servers, migrations, `make run`."""
