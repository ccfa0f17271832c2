"""A failed qualification exam shows every question with the member's answer and the right one."""

from __future__ import annotations

import re

from sapien.database import utcnow
from sapien.labeling import exams

from .conftest import make_pack


def test_a_failed_exam_shows_each_question_with_both_answers(app, make_member, tmp_path):
    with app.test_request_context():
        pack = make_pack(tmp_path, items=2, exam=3, exam_required=True, exam_size=3, exam_pass_percent=100)
        slug, pack_id = pack.slug, pack.id
    ana = make_member()
    assert ana.post(f"/packs/{slug}/exam/start").status_code == 303
    with app.app_context():
        attempt = exams.exam_state(ana.id, pack_id, utcnow()).attempt
        attempt_id, item_ids = attempt.id, list(attempt.item_ids)
    # Exam items are all "neg": the first answer is right, the other two wrong.
    for number, item_id in enumerate(item_ids):
        label = "neg" if number == 0 else "pos"
        response = ana.post(f"/packs/{slug}/exam", {"attempt_id": attempt_id, "item_id": item_id, "label": label})
        assert response.status_code == 303
    page = ana.client.get(f"/packs/{slug}/exam").get_data(as_text=True)
    assert "1 of 3 right" in page
    review = page[page.index('id="exam-review"'):]
    parts = re.split(r'<li class="feedback card feedback--(right|wrong)" id="exam-question-(\d)">', review)[1:]
    questions = [(parts[i], parts[i + 1], parts[i + 2]) for i in range(0, len(parts), 3)]
    assert [(state, number) for state, number, _body in questions] == [("right", "1"), ("wrong", "2"), ("wrong", "3")]
    wrong = questions[1][2]
    assert "Your answer:" in wrong and "The expected answer:" in wrong
    assert re.search(r"Your answer:.*pos.*The expected answer:.*neg", re.sub(r"\s+", " ", wrong))
    assert "Exam" in wrong and "is awful." in wrong  # the question itself
    right = questions[0][2]
    assert "The expected answer:" not in right

    fr = ana.client.get(f"/packs/{slug}/exam", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "Vos réponses" in fr and "Votre réponse :" in fr


def test_an_exam_in_progress_or_passed_shows_no_answers(app, make_member, tmp_path):
    with app.test_request_context():
        pack = make_pack(tmp_path, items=2, exam=2, exam_required=True, exam_size=2, exam_pass_percent=50)
        slug, pack_id = pack.slug, pack.id
    ana = make_member()
    ana.post(f"/packs/{slug}/exam/start")
    with app.app_context():
        attempt = exams.exam_state(ana.id, pack_id, utcnow()).attempt
        attempt_id, item_ids = attempt.id, list(attempt.item_ids)
    ana.post(f"/packs/{slug}/exam", {"attempt_id": attempt_id, "item_id": item_ids[0], "label": "neg"})
    assert "examreview" not in ana.client.get(f"/packs/{slug}/exam").get_data(as_text=True)
    ana.post(f"/packs/{slug}/exam", {"attempt_id": attempt_id, "item_id": item_ids[1], "label": "pos"})
    page = ana.client.get(f"/packs/{slug}/exam").get_data(as_text=True)
    assert "You passed this exam." in page and "examreview" not in page
