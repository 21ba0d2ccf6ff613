"""Every Processing algorithm the provider offers."""


def all_algorithms():
    return []
