pytest_plugins = [
    "tests.bed.kube_fixtures",
    "tests.bed.metadata",
    "tests.bed.do_imitation.fixtures",
]
