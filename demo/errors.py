"""The demo's one error: something did not start or did not behave, said in a sentence."""


class DemoError(Exception):
    pass
