"""TRL's conversational data through the tokenizer's chat template, and the errors around it."""

import pytest

from prefrl.lm.chat import to_plain
from prefrl.lm.records import load_records

TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


@pytest.fixture
def chat_tokenizer(tokenizer):
    import copy

    chat = copy.deepcopy(tokenizer)
    chat.chat_template = TEMPLATE
    return chat


def user(text):
    return {"role": "user", "content": text}


def assistant(text):
    return {"role": "assistant", "content": text}


def test_sft_messages_become_a_templated_prompt_and_the_answer(chat_tokenizer):
    rows = [{"messages": [user("review of the soup :"), assistant("the soup was great .")]}]
    (record,) = load_records(rows, "sft", chat_tokenizer)
    assert record == {
        "prompt": "<user> review of the soup : <assistant>",
        "completion": "the soup was great .",
    }


def test_preferences_with_an_explicit_or_an_implicit_prompt(chat_tokenizer):
    explicit = {"prompt": [user("cake ?")], "chosen": [assistant("good")], "rejected": [assistant("bad")]}
    implicit = {"chosen": [user("cake ?"), assistant("good")], "rejected": [user("cake ?"), assistant("bad")]}
    want = {"prompt": "<user> cake ? <assistant>", "chosen": "good", "rejected": "bad"}
    assert load_records([explicit, implicit], "preference", chat_tokenizer) == [want, want]


def test_prompts_from_messages_and_plain_rows_pass_through(chat_tokenizer):
    rows = [{"messages": [user("soup ?")]}, {"prompt": "plain :"}]
    assert [r["prompt"] for r in load_records(rows, "prompts", chat_tokenizer)] == [
        "<user> soup ? <assistant>",
        "plain :",
    ]
    assert to_plain([{"prompt": "a", "completion": "b"}], "sft", None) == [{"prompt": "a", "completion": "b"}]


@pytest.mark.parametrize(
    ("rows", "kind", "message"),
    [
        ([{"messages": [user("a"), assistant("b")]}], "sft", "no chat template"),
        ([{"messages": [{"role": "user"}]}], "sft", "list of {'role': str, 'content': str}"),
        ([{"messages": [user("a")]}], "sft", "ending with the assistant's answer"),
        ([{"chosen": [assistant("x")], "rejected": [assistant("y")]}], "preference", "share no prompt"),
    ],
)
def test_bad_conversations_say_the_fix(tokenizer, chat_tokenizer, rows, kind, message):
    with pytest.raises(ValueError, match=message):
        load_records(rows, kind, tokenizer if message == "no chat template" else chat_tokenizer)
