import whop_oauth


def test_all_lists_exactly_the_public_names() -> None:
    public = {name for name in dir(whop_oauth) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(whop_oauth, name)).__name__ == "module"}
    assert set(whop_oauth.__all__) == public - modules


def test_every_exported_member_says_it_comes_from_whop_oauth() -> None:
    for name in whop_oauth.__all__:
        member = getattr(whop_oauth, name)
        module = getattr(member, "__module__", "whop_oauth")
        assert module.startswith("whop_oauth"), name
