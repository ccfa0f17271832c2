from __future__ import annotations

from flask import Blueprint, Response, abort, request, stream_with_context, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from sapien.database import utcnow
from sapien.errors import DomainError
from sapien.extensions import htmx
from sapien.forms import EmptyForm
from sapien.labeling import answers
from sapien.labeling.packs import get_pack_by_slug
from sapien.labeling.plain_answers import PLAIN_FORMATS, plain_answer
from sapien.moderation import verdicts
from sapien.quality import appeals as quality_appeals
from sapien.quality import batch, escalation, exports, online, overrides, reviews
from sapien.quality import errors as quality_errors
from sapien.quality import reputation as quality_reputation
from sapien.quality import results as quality_results
from sapien.quality.forms import (
    METHOD_LABELS,
    OUTCOME_LABELS,
    AggregateForm,
    AppealDecisionForm,
    AppealForm,
    OverrideForm,
    ReviewForm,
)
from sapien.web import (
    flash_message,
    form_status,
    redirect_to,
    render_error,
    render_page_or_fragment,
    role_required,
    safe_next_url,
    show_domain_error,
)

bp = Blueprint("quality", __name__)


@bp.record_once
def _register_template_globals(state) -> None:
    # Methods in words on every page that shows a label's method.
    state.app.jinja_env.globals["method_name"] = quality_results.method_name


def _status_labels() -> dict:
    return {"accepted": _("Accepted"), "pending_review": _("Waiting for review"), "rejected": _("Rejected")}


def _media_url(media) -> str | None:
    return url_for("labeling.media", media_id=media.id) if media is not None else None


# --- the review queue ----------------------------------------------------------------------------

def _require_reviewer():
    restriction = verdicts.is_restricted(current_user.id, "review", utcnow())
    if restriction is not None:
        return render_error(403, verdicts.restriction_message(restriction))
    if not quality_reputation.can_review(current_user.id):
        return render_error(
            403,
            _("Reviewing opens at a reputation of %(needed)s or with the reviewer role. Yours is %(score)s.",
              needed=quality_reputation.reviewer_min_reputation(), score=quality_reputation.reputation_of(current_user.id)),
        )
    return None


def _render_review(view=None, form=None, prior=None, error=None, status=200):
    now = utcnow()
    if view is None:
        claim = reviews.active_claim(current_user.id, now)
        view = reviews.review_view(claim.id, current_user.id) if claim is not None else None
    return render_page_or_fragment(
        "quality/review.html",
        "quality/fragments/review.html",
        status=status,
        view=view,
        form=form or ReviewForm(formdata=None),
        claim_form=EmptyForm(formdata=None),
        prior=prior if prior is not None else (online.effective_answer(view.submission) if view else None),
        media_url=_media_url(view.media) if view else None,
        error=error,
        waiting=reviews.reviews_waiting(current_user.id, now),
        recent=reviews.recent_reviews(current_user.id),
        outcome_labels=OUTCOME_LABELS,
    )


@bp.get("/review")
@login_required
def review_queue():
    return _require_reviewer() or _render_review()


@bp.post("/review/claim")
@login_required
def claim_next():
    refused = _require_reviewer()
    if refused:
        return refused
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        reviews.claim_next_review(current_user.id, utcnow())
    except quality_errors.NoReviewsLeft as error:
        flash_message(error.message, "info")
    return redirect_to(url_for("quality.review_queue"))


@bp.post("/review/<int:review_id>/claim")
@login_required
def claim(review_id: int):
    refused = _require_reviewer()
    if refused:
        return refused
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        reviews.claim_review(review_id, current_user.id, utcnow())
    except quality_errors.ReviewNotFound:
        abort(404)
    except quality_errors.OwnWork as error:
        return render_error(403, str(error.message))
    except quality_errors.ReviewError as error:
        flash_message(error.message, "error")
    return redirect_to(url_for("quality.review_queue"))


def _release(review_id: int, message: str, back: str):
    """Hand a claimed review back (to the reviewers' or the moderators' queue) and return there."""
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        reviews.release_review(review_id, current_user.id, utcnow())
    except quality_errors.ReviewNotFound:
        abort(404)
    flash_message(message, "info")
    return redirect_to(back)


@bp.post("/review/<int:review_id>/release")
@login_required
def release(review_id: int):
    return _release(review_id, _("The review went back to the queue."), url_for("quality.review_queue"))


@bp.post("/review/<int:review_id>/decide")
@login_required
def decide(review_id: int):
    return _require_reviewer() or _decide(review_id, url_for("quality.review_queue"), _render_review)


def _decide(review_id: int, back_to: str, render):
    """Accept, fix or reject the reviewer's claimed review, then go back to `back_to`; a bad form is shown
    again by `render` (the reviewers' page or the moderators')."""
    try:
        view = reviews.review_view(review_id, current_user.id)
    except quality_errors.ReviewNotFound:
        abort(404)
    form = ReviewForm()
    prior = None
    if form.validate_on_submit():
        outcome = form.outcome.data
        try:
            fixed = None
            if outcome == "fixed":
                prior = answers.parse_answer_form(view.pack, view.item, request.form)
                fixed = prior
            reviews.decide_review(review_id, current_user.id, outcome=outcome, reason=form.reason.data or "", fixed_answer=fixed, now=utcnow())
        except quality_errors.ReviewClaimExpired as error:
            flash_message(error.message, "error")
            return redirect_to(back_to)
        except DomainError as error:
            show_domain_error(form, error)
        else:
            flash_message({"accepted": _("Accepted. Thank you!"), "fixed": _("Fixed and accepted. Thank you!"),
                           "rejected": _("Rejected; the member will see your reason.")}[outcome])
            return redirect_to(back_to)
    return render(view=view, form=form, prior=prior, status=form_status(form))


# --- the moderators' queue: reviews no reviewer took in time, or none may take ------------------------

def _render_escalated(view=None, form=None, prior=None, status=200):
    now = utcnow()
    if view is None:
        claim = reviews.active_claim(current_user.id, now, escalated=True)
        view = reviews.review_view(claim.id, current_user.id) if claim is not None else None
    return render_page_or_fragment(
        "quality/escalated.html",
        "quality/fragments/escalated.html",
        status=status,
        view=view,
        form=form or ReviewForm(formdata=None),
        claim_form=EmptyForm(formdata=None),
        prior=prior if prior is not None else (online.effective_answer(view.submission) if view else None),
        media_url=_media_url(view.media) if view else None,
        rows=escalation.escalated_reviews(current_user.id, now),
        health=escalation.review_queue_health(now),
        escalation_minutes=reviews.review_escalation_minutes(),
        outcome_labels=OUTCOME_LABELS,
    )


@bp.get("/manage/reviews")
@role_required("moderator")
def escalated():
    return _render_escalated()


@bp.post("/manage/reviews/<int:review_id>/claim")
@role_required("moderator")
def claim_escalated(review_id: int):
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        escalation.claim_escalated_review(review_id, current_user.id, utcnow())
    except quality_errors.ReviewNotFound:
        abort(404)
    except quality_errors.ReviewError as error:
        flash_message(error.message, "error")
    return redirect_to(url_for("quality.escalated"))


@bp.post("/manage/reviews/<int:review_id>/release")
@role_required("moderator")
def release_escalated(review_id: int):
    return _release(review_id, _("The review went back to the moderators' queue."), url_for("quality.escalated"))


@bp.post("/manage/reviews/<int:review_id>/decide")
@role_required("moderator")
def decide_escalated(review_id: int):
    return _decide(review_id, url_for("quality.escalated"), _render_escalated)


# --- a member's submission and appeals ------------------------------------------------------------

def _render_submission(view, form=None, status=200):
    return render_page_or_fragment(
        "quality/submission.html",
        "quality/fragments/submission.html",
        status=status,
        view=view,
        form=form or AppealForm(formdata=None),
        media_url=_media_url(view.media),
        status_labels=_status_labels(),
    )


@bp.get("/submissions/<int:submission_id>")
@login_required
def submission(submission_id: int):
    try:
        view = quality_appeals.submission_view(submission_id, current_user.id)
    except quality_errors.SubmissionNotFound:
        abort(404)
    return _render_submission(view)


@bp.post("/submissions/<int:submission_id>/appeal")
@login_required
def appeal(submission_id: int):
    try:
        view = quality_appeals.submission_view(submission_id, current_user.id)
    except quality_errors.SubmissionNotFound:
        abort(404)
    form = AppealForm()
    if form.validate_on_submit():
        try:
            quality_appeals.appeal_submission(submission_id, current_user.id, form.message.data, now=utcnow())
        except quality_errors.SubmissionNotFound:
            abort(404)
        except DomainError as error:
            show_domain_error(form, error)
        else:
            flash_message(_("Your appeal was sent. A moderator will decide it."))
            return redirect_to(url_for("quality.submission", submission_id=submission_id))
    view = quality_appeals.submission_view(submission_id, current_user.id)
    return _render_submission(view, form, status=422 if request.method == "POST" else 200)


@bp.get("/manage/appeals")
@role_required("moderator")
def appeals():
    return _render_appeals()


def _render_appeals(forms=None, status=200):
    rows = quality_appeals.appeals_for_moderators()
    forms = forms or {}
    return render_page_or_fragment(
        "quality/appeals.html",
        "quality/fragments/appeals.html",
        status=status,
        rows=rows,
        forms={row.appeal.id: forms.get(row.appeal.id) or AppealDecisionForm(formdata=None, prefix=f"a{row.appeal.id}") for row in rows},
        media_urls={row.appeal.id: _media_url(row.media) for row in rows},
    )


@bp.post("/manage/appeals/<int:appeal_id>/decide")
@role_required("moderator")
def decide_appeal(appeal_id: int):
    form = AppealDecisionForm(prefix=f"a{appeal_id}")
    if form.validate_on_submit():
        try:
            quality_appeals.decide_appeal(appeal_id, current_user.id, overturn=form.decision.data == "overturn", note=form.note.data or "", now=utcnow())
        except DomainError as error:
            show_domain_error(form, error)
        else:
            flash_message(_("Appeal overturned: the submission is accepted and paid.") if form.decision.data == "overturn"
                          else _("Appeal upheld: the rejection stands."))
            return redirect_to(url_for("quality.appeals"))
    return _render_appeals({appeal_id: form}, status=422)


# --- results and exports (moderators) --------------------------------------------------------------

def _pack_or_404(slug: str):
    pack = get_pack_by_slug(slug)
    if pack is None:
        abort(404)
    return pack


def _methods_for(pack) -> list[tuple[str, str]]:
    if pack.task_type == "bounding_boxes":
        names = ["box_medoid"]
    elif pack.task_type in ("text_cleaning", "audio_transcription"):
        names = ["medoid"]
    else:
        names = ["calibrated", "dawid_skene", "wawa", "majority_vote", "crowdkit_dawid_skene"]
    return [(name, METHOD_LABELS[name]) for name in names]


@bp.get("/manage/packs/<slug>/results")
@role_required("moderator")
def results(slug: str):
    pack = _pack_or_404(slug)
    form = AggregateForm(formdata=None)
    form.method.choices = _methods_for(pack)
    return render_page_or_fragment(
        "quality/results.html", "quality/fragments/results.html", results=quality_results.pack_results(pack.id), form=form
    )


@bp.post("/manage/packs/<slug>/results/aggregate")
@role_required("moderator")
def aggregate(slug: str):
    pack = _pack_or_404(slug)
    form = AggregateForm()
    form.method.choices = _methods_for(pack)
    if not form.validate_on_submit():
        return render_page_or_fragment(
            "quality/results.html", "quality/fragments/results.html", status=422, results=quality_results.pack_results(pack.id), form=form
        )
    if form.method.data == batch.default_method(pack):
        batch.enqueue_aggregation(pack.id, now=utcnow())
        flash_message(_("Aggregation queued: the verified labels update in a moment."))
    else:
        report = batch.aggregate_pack(pack.id, now=utcnow(), method=form.method.data)
        flash_message(_("Aggregated %(answers)s answers into %(labels)s verified labels.", answers=report.answers, labels=report.labels_written))
    return redirect_to(url_for("quality.results", slug=pack.slug))


# --- the per-item results browser and overrides (moderators) ----------------------------------------

def _item_context(pack, results, forms=None) -> dict:
    forms = forms or {}
    override_forms = {}
    for result in results:
        form = forms.get(result.item.id) or OverrideForm(formdata=None, prefix=f"i{result.item.id}")
        if form.answer.data is None and result.label is not None:
            form.answer.data = plain_answer(pack.task_type, result.label.answer)
        override_forms[result.item.id] = form
    media = {result.item.id: url_for("labeling.media", media_id=result.item.media_id) if result.item.media_id else None for result in results}
    return {
        "override_forms": override_forms,
        "media_urls": media,
        "answer_format": PLAIN_FORMATS[pack.task_type],
        "pack": pack,
        "plain": lambda answer: plain_answer(pack.task_type, answer),
        "status_labels": _status_labels(),
    }


@bp.get("/manage/packs/<slug>/results/items")
@role_required("moderator")
def result_items(slug: str):
    pack = _pack_or_404(slug)
    view = quality_results.browse_items(pack.id, quality_results.chosen_filters(request.args), request.args.get("page", 1, type=int) or 1)
    return render_page_or_fragment(
        "quality/result_items.html", "quality/fragments/result_items.html", view=view, item_filters=quality_results.ITEM_FILTERS,
        **_item_context(pack, view.items),
    )


def _render_item(pack, item_id: int, *, form=None, status: int = 200):
    result = quality_results.item_result(pack.id, item_id)
    if result is None:
        abort(404)
    return render_page_or_fragment(
        "quality/result_item.html", "quality/fragments/result_item.html", status=status, result=result,
        **_item_context(pack, [result], {item_id: form} if form is not None else None),
    )


@bp.get("/manage/packs/<slug>/results/items/<int:item_id>")
@role_required("moderator")
def result_item(slug: str, item_id: int):
    return _render_item(_pack_or_404(slug), item_id)


@bp.post("/manage/packs/<slug>/results/items/<int:item_id>/override")
@role_required("moderator")
def override(slug: str, item_id: int):
    pack = _pack_or_404(slug)
    if quality_results.item_result(pack.id, item_id) is None:
        abort(404)
    form = OverrideForm(prefix=f"i{item_id}")
    if form.validate_on_submit():
        try:
            overrides.override_label(pack.id, item_id, moderator_id=current_user.id, answer=form.answer.data or "", reason=form.reason.data or "", now=utcnow())
        except quality_errors.OverrideError as error:
            show_domain_error(form, error)
        else:
            flash_message(_("The label is overridden: your answer stands, and later aggregation keeps it."))
            if htmx:
                return _render_item(pack, item_id)
            return redirect_to(safe_next_url(url_for("quality.result_item", slug=pack.slug, item_id=item_id)))
    return _render_item(pack, item_id, form=form, status=422)


def _download(generator, filename: str, mimetype: str) -> Response:
    response = Response(stream_with_context(generator), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/manage/packs/<slug>/results/export.jsonl")
@role_required("moderator")
def export_jsonl(slug: str):
    pack = _pack_or_404(slug)
    return _download(exports.export_jsonl(pack.id), f"{pack.slug}-labels.jsonl", "application/x-ndjson")


@bp.get("/manage/packs/<slug>/results/export.csv")
@role_required("moderator")
def export_csv(slug: str):
    pack = _pack_or_404(slug)
    return _download(exports.export_csv(pack.id), f"{pack.slug}-labels.csv", "text/csv")


@bp.get("/manage/packs/<slug>/results/export.coco.json")
@role_required("moderator")
def export_coco(slug: str):
    pack = _pack_or_404(slug)
    if pack.task_type != "bounding_boxes":
        abort(404)
    return _download(exports.export_coco(pack.id), f"{pack.slug}-coco.json", "application/json")


# --- reputation --------------------------------------------------------------------------------------

@bp.get("/reputation")
@login_required
def reputation():
    history = quality_reputation.reputation_history(current_user.id, limit=100)
    return render_page_or_fragment(
        "quality/reputation.html",
        "quality/fragments/reputation.html",
        score=quality_reputation.reputation_of(current_user.id),
        history=history,
        chart=quality_reputation.reputation_chart(list(reversed(history))),
        can_review=quality_reputation.can_review(current_user.id),
        reviewer_min=quality_reputation.reviewer_min_reputation(),
        reason_labels=quality_reputation.reputation_reason_labels(),
    )
