"""Memories shared by the adapter tests: texts, ids and the metadata a memory store keeps."""

QUERY = "When did Caroline go to the LGBTQ support group?"
MEMORIES = [
    ("m1", "Caroline went to the LGBTQ support group yesterday.", {"date": "8 May 2023", "speaker": "Caroline"}),
    ("m2", "Melanie painted a sunrise over the lake.", {"date": "8 May 2023", "speaker": "Melanie"}),
    ("m3", "Caroline is researching adoption agencies.", {"date": "25 May 2023", "speaker": "Caroline"}),
    ("m4", "Melanie ran a charity race for mental health.", {"date": "25 May 2023", "speaker": "Melanie"}),
    ("m5", "It rained all weekend, so we stayed in and played board games.", {"date": "9 June 2023"}),
]
#: A fake API key the tests check never leaks.
SECRET = "sk-memos-do-not-leak-4242"
