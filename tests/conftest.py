pytest_plugins = ["tests.bed.kube_fixtures", "tests.bed.metadata"]
