from __future__ import annotations

import tempfile
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Response, abort, current_app, request, send_file, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required

from sapien.database import retry_transaction, rows_kept_loaded, unit_of_work, utcnow
from sapien.extensions import htmx
from sapien.forms import EmptyForm
from sapien.home import service as home_service
from sapien.labeling import access as labeling_access
from sapien.labeling import answers, exams, imports, leases, packs, plain_answers, submissions
from sapien.labeling import errors as labeling_errors
from sapien.labeling.forms import TASK_TYPE_CHOICES, CampaignForm, PackForm, PackStatusForm, UploadForm
from sapien.labeling.models import DIFFICULTIES, TASK_TYPES
from sapien.quality.escalation import escalated_submission_ids
from sapien.quality.reputation import can_review
from sapien.web import (
    database_id,
    flash_message,
    form_status,
    redirect_to,
    render_page_or_fragment,
    role_required,
    safe_next_url,
    show_domain_error,
    wants_fragment,
)

bp = Blueprint("labeling", __name__)

TASK_TYPE_LABELS = dict(TASK_TYPE_CHOICES)
DIFFICULTY_LABELS = {
    "beginner": _l("Beginner"),
    "intermediate": _l("Intermediate"),
    "advanced": _l("Advanced"),
    "expert": _l("Expert"),
}
KIND_LABELS = {"enterprise": _l("Enterprise"), "dual": _l("Dual reward"), "community": _l("Community")}
STATUS_LABELS = {
    "draft": _l("Draft"),
    "accepted": _l("Accepted"),
    "pending_review": _l("In review"),
    "rejected": _l("Rejected"),
    "open": _l("Open"),
    "paused": _l("Paused"),
    "closed": _l("Closed"),
}
# Where an answer's reward stands, in the member's history (`submissions.HistoryRow.reward`).
REWARD_LABELS = {
    "pending": _l("Pending"),
    "in_review": _l("In review"),
    "verified": _l("Verified, paying"),
    "paid": _l("Paid"),
    "not_verified": _l("Not verified"),
    "void": _l("Rejected"),
    "rejected": _l("Rejected"),
    "reversed": _l("Rejected, reward reversed"),
}
UPLOAD_SUFFIXES = (".jsonl", ".csv")


@bp.record_once
def _register_template_globals(state) -> None:
    # The answer display (show_answer.html) draws cleaning diffs with this, on any area's pages.
    state.app.jinja_env.globals["text_diff"] = answers.text_diff


def _rejection_url(submission_id: int) -> str | None:
    """The quality area's "why rejected / appeal" page of a submission (absent until that area is installed)."""
    if "quality.submission" not in current_app.view_functions:
        return None
    return url_for("quality.submission", submission_id=submission_id)


@bp.context_processor
def _labels():
    return {
        "rejection_url": _rejection_url,
        "example_box_count": answers.example_box_count,
        "task_type_labels": TASK_TYPE_LABELS,
        "difficulty_labels": DIFFICULTY_LABELS,
        "kind_labels": KIND_LABELS,
        "status_labels": STATUS_LABELS,
        "reward_labels": REWARD_LABELS,
    }


def _pack_or_404(slug: str):
    pack = packs.get_pack_by_slug(slug)
    if pack is None:
        abort(404)
    return pack


def _member_pack_or_404(slug: str):
    """A pack as members reach it: a draft does not exist for them yet (moderators see it to check it)."""
    pack = _pack_or_404(slug)
    if pack.status == "draft" and not current_user.has_role("moderator"):
        abort(404)
    return pack


def _media_url(media) -> str | None:
    return url_for("labeling.media", media_id=media.id) if media is not None else None


# --- marketplace and pack page --------------------------------------------------------------------

@bp.get("/work")
@login_required
def marketplace():
    task_type = request.args.get("task_type", "")
    difficulty = request.args.get("difficulty", "")
    unlocked = request.args.get("unlocked", "")
    sort = request.args.get("sort", "reward")
    task_type = task_type if task_type in TASK_TYPES else ""
    difficulty = difficulty if difficulty in DIFFICULTIES else ""
    unlocked = unlocked if unlocked in ("unlocked", "locked") else ""
    sort = sort if sort in labeling_access.MARKET_SORTS else "reward"
    cards = labeling_access.marketplace(current_user.id, task_type=task_type, difficulty=difficulty, unlocked=unlocked, sort=sort)
    return render_page_or_fragment(
        "labeling/marketplace.html",
        "labeling/fragments/pack_list.html",
        cards=cards,
        filters={"task_type": task_type, "difficulty": difficulty, "unlocked": unlocked, "sort": sort},
    )


@bp.get("/packs/<slug>")
@login_required
def pack(slug: str):
    pack = _member_pack_or_404(slug)
    if pack.status == "closed" and not current_user.has_role("moderator"):
        abort(404)
    campaign = packs.get_campaign(pack.campaign_id)
    access = labeling_access.access_for(pack, labeling_access.member_standing(current_user.id))
    points, xp, partner, shares = labeling_access.rewards_after_difficulty(pack, campaign)
    counts = packs.pack_counts([pack.id]).get(pack.id, packs.PackCounts())
    exam = exams.exam_state(current_user.id, pack.id, utcnow()) if pack.exam_required else None
    return render_page_or_fragment(
        "labeling/pack.html",
        "labeling/fragments/pack.html",
        pack=pack,
        campaign=campaign,
        access=access,
        rewards={"points": points, "xp": xp, "partner": partner, "shares": shares},
        counts=counts,
        exam=exam,
        # Its owner and the moderators see how many items never converged (the results page lists them).
        manages=current_user.has_role("moderator") or campaign.created_by == current_user.id,
    )


# --- work ---------------------------------------------------------------------------------------

@dataclass
class Feedback:
    status: str
    is_gold: bool
    correct: bool | None
    expected: dict | None
    explanation: str
    points: int
    xp: int
    pack: object
    item: object
    media_url: str | None
    reward_state: str = "pending"  # "paid": earned now (a right gold answer); "pending": once verified


def _feedback_from_result(result, work_before) -> Feedback:
    gold = result.feedback
    return Feedback(
        status=result.status,
        is_gold=gold is not None,
        correct=gold.correct if gold is not None else None,
        expected=gold.expected if gold is not None else None,
        explanation=gold.explanation if gold is not None else "",
        points=result.points,
        xp=result.xp,
        pack=work_before.pack,
        item=work_before.item,
        media_url=_media_url(work_before.media),
        reward_state=result.reward_state,
    )


def _feedback_from_submission(submission_id: int) -> Feedback | None:
    found = submissions.gold_feedback_for(current_user.id, submission_id)
    if found is None:
        return None
    submission, item, pack = found
    media = packs.get_media(item.media_id)
    return Feedback(
        status=submission.status,
        is_gold=submission.is_gold,
        correct=submission.gold_correct,
        expected=item.gold_answer if submission.is_gold else None,
        explanation=item.gold_explanation if submission.is_gold else "",
        points=submission.paid_points,
        xp=submission.paid_xp,
        pack=pack,
        item=item,
        media_url=_media_url(media),
        reward_state=submission.reward_state,
    )


def _render_work(pack, *, status: int = 200, work=None, prior=None, error: str | None = None, feedback: Feedback | None = None,
                 done: str | None = None, take: bool = True, nav_pending_oob: bool = False):
    """The work page: feedback on the last answer (if any), then the current item or why there is none.

    `take=False` (a GET) never leases: without a current item the page offers a Start form that POSTs, and
    that htmx sends by itself on load.
    """
    if work is None and done is None and take:
        try:
            work = leases.next_work_item(current_user.id, pack.id, utcnow())
        except labeling_errors.PackLocked as locked:
            if feedback is None:
                flash_message(str(locked.message), "error")
                return redirect_to(url_for("labeling.pack", slug=pack.slug))
            done = str(locked.message)
        except (labeling_errors.NoWorkLeft, labeling_errors.DailyCapReached) as stop:
            done = str(stop.message)
    if work is not None and work.pending is not None:
        home_service.remember_nav_pending(current_user.id, work.pending)  # read with the item: the nav needs no query
    return render_page_or_fragment(
        "labeling/work.html",
        "labeling/fragments/work.html",
        status=status,
        pack=pack,
        work=work,
        media_url=_media_url(work.media) if work else None,
        prior=prior,
        error=error,
        feedback=feedback,
        done=done,
        nav_pending_oob=nav_pending_oob and wants_fragment(),
    )


def _take_next_quietly(pack) -> None:
    """Lease the member's next item before a plain form's redirect, so the page it lands on shows it; if
    there is none, that page offers Start, which says why."""
    with suppress(labeling_errors.PackLocked, labeling_errors.NoWorkLeft, labeling_errors.DailyCapReached):
        leases.next_work_item(current_user.id, pack.id, utcnow())


@bp.get("/packs/<slug>/work")
@login_required
def work(slug: str):
    pack = _member_pack_or_404(slug)
    feedback = None
    if request.args.get("feedback", type=database_id):
        feedback = _feedback_from_submission(request.args.get("feedback", type=database_id))
    work = leases.current_work_item(current_user.id, pack.id, utcnow())
    if work is None and feedback is None:
        access = labeling_access.pack_access(current_user.id, pack.id, utcnow())
        if not access.unlocked:
            flash_message(str(access.reasons[0]), "error")
            return redirect_to(url_for("labeling.pack", slug=pack.slug))
    return _render_work(pack, work=work, feedback=feedback, take=False)


@bp.post("/packs/<slug>/work/start")
@login_required
def start_work(slug: str):
    """Lease the member's next item: the work page's Start form, sent by htmx on load or by hand."""
    pack = _member_pack_or_404(slug)
    if htmx:
        return _render_work(pack)
    try:
        leases.next_work_item(current_user.id, pack.id, utcnow())
    except labeling_errors.PackLocked as locked:
        flash_message(str(locked.message), "error")
        return redirect_to(url_for("labeling.pack", slug=pack.slug))
    except (labeling_errors.NoWorkLeft, labeling_errors.DailyCapReached) as stop:
        flash_message(str(stop.message), "info")
    return redirect_to(url_for("labeling.work", slug=pack.slug))


@retry_transaction
def _answer_and_render(lease_id: int, slug: str, time_spent: int | None):
    """The answer, the next lease and the page are one transaction (one commit per answer), run again as a
    whole if PostgreSQL picks it as a deadlock victim; the pack comes with the lease. The page is rendered
    before the commit, so the rows it read stay loaded through the commit and its listeners instead of
    being reloaded for nothing; so is the nav's new pending total, which needs no transaction of its own."""
    response = None
    with rows_kept_loaded(), unit_of_work():
        result, answered = submissions.submit_answer_form(
            current_user.id, lease_id, request.form, pack_slug=slug, now=utcnow(), time_spent_ms=time_spent
        )
        if htmx:
            pending_moved = result.reward_state in ("pending", "verified") and bool(result.points or result.xp)
            response = _render_work(answered.pack, feedback=_feedback_from_result(result, answered), nav_pending_oob=pending_moved)
        else:
            _take_next_quietly(answered.pack)
    return result, response


@bp.post("/packs/<slug>/work")
@login_required
def submit(slug: str):
    lease_id = request.form.get("lease_id", type=database_id)
    if not lease_id:
        abort(404)
    time_spent = request.form.get("time_spent_ms", type=int)
    try:
        result, response = _answer_and_render(lease_id, slug, time_spent)
    except labeling_errors.InvalidAnswer as error:
        # Show the same item again with what the member entered and what is wrong with it.
        current = leases.work_item(packs.get_lease(lease_id))
        try:
            prior = answers.parse_answer_form(current.pack, current.item, request.form)
        except labeling_errors.InvalidAnswer:
            prior = None
        return _render_work(current.pack, status=422, work=current, prior=prior, error=str(error.message))
    except labeling_errors.LabelingNotFound:
        abort(404)
    except (labeling_errors.LeaseExpired, labeling_errors.AlreadySubmitted) as error:
        pack = _pack_or_404(slug)
        flash_message(str(error.message), "error")
        return _render_work(pack) if htmx else redirect_to(url_for("labeling.work", slug=pack.slug))
    if response is not None:
        return response
    return redirect_to(url_for("labeling.work", slug=slug, feedback=result.submission_id))


@bp.post("/packs/<slug>/skip")
@login_required
def skip(slug: str):
    pack = _member_pack_or_404(slug)
    lease_id = request.form.get("lease_id", type=database_id) or 0
    try:
        leases.release_lease(current_user.id, lease_id, now=utcnow())
    except labeling_errors.LabelingNotFound:
        abort(404)
    flash_message(_("Skipped. The item goes to someone else."), "info")
    if htmx:
        return _render_work(pack)
    _take_next_quietly(pack)
    return redirect_to(url_for("labeling.work", slug=pack.slug))


# --- exam ---------------------------------------------------------------------------------------

def _render_exam(pack, *, status: int = 200, prior=None, error: str | None = None):
    state = exams.exam_state(current_user.id, pack.id, utcnow())
    # A failed attempt shows every question with the member's answer and the right one.
    review = exams.exam_review(state.attempt) if state.attempt is not None and not state.passed else []
    return render_page_or_fragment(
        "labeling/exam.html",
        "labeling/fragments/exam.html",
        status=status,
        pack=pack,
        state=state,
        review=review,
        media_url_of=_media_url,
        media_url=_media_url(state.next_media),
        prior=prior,
        error=error,
    )


@bp.get("/packs/<slug>/exam")
@login_required
def exam(slug: str):
    pack = _member_pack_or_404(slug)
    if not pack.exam_required:
        abort(404)
    return _render_exam(pack)


@bp.post("/packs/<slug>/exam/start")
@login_required
def start_exam(slug: str):
    pack = _member_pack_or_404(slug)
    if not pack.exam_required:
        abort(404)
    try:
        exams.start_exam(current_user.id, pack.id, utcnow())
    except labeling_errors.ExamError as error:
        flash_message(str(error.message), "error")
        return _render_exam(pack, status=422)
    return redirect_to(url_for("labeling.exam", slug=pack.slug))


@bp.post("/packs/<slug>/exam")
@login_required
def answer_exam(slug: str):
    pack = _member_pack_or_404(slug)
    attempt_id = request.form.get("attempt_id", type=database_id) or 0
    item_id = request.form.get("item_id", type=database_id) or 0
    item = packs.get_item(item_id)
    if item is None or item.pack_id != pack.id:
        abort(404)
    prior = None
    try:
        prior = answers.parse_answer_form(pack, item, request.form)
        attempt = exams.answer_exam_item(current_user.id, attempt_id, item_id, prior, now=utcnow())
    except labeling_errors.InvalidAnswer as error:
        return _render_exam(pack, status=422, prior=prior if isinstance(prior, dict) else None, error=str(error.message))
    except labeling_errors.LabelingNotFound:
        abort(404)
    except labeling_errors.ExamError as error:
        flash_message(str(error.message), "error")
        return redirect_to(url_for("labeling.exam", slug=pack.slug))
    if attempt.finished_at is not None:
        if attempt.passed:
            flash_message(_("You passed the exam: the pack is yours to work on."))
        else:
            flash_message(_("Not this time. Read the instructions again and retake the exam later."), "info")
    return redirect_to(url_for("labeling.exam", slug=pack.slug))


# --- history ------------------------------------------------------------------------------------

@bp.get("/work/history")
@login_required
def my_submissions():
    page = request.args.get("page", 1, type=int)
    rows, pages = submissions.my_submissions(current_user.id, page=page)
    return render_page_or_fragment(
        "labeling/history.html", "labeling/fragments/history.html", rows=rows, pages=pages, page_number=min(max(1, page), pages),
        with_moderator=escalated_submission_ids([row.submission.id for row in rows], utcnow()),
    )


# --- moderators ---------------------------------------------------------------------------------

@bp.get("/manage/campaigns")
@role_required("moderator")
def manage():
    campaigns = packs.list_campaigns()
    counts = packs.pack_counts()
    return render_page_or_fragment("labeling/manage.html", "labeling/fragments/manage.html", campaigns=campaigns, counts=counts,
                                   status_form=PackStatusForm(formdata=None))


@bp.route("/manage/campaigns/new", methods=["GET", "POST"])
@role_required("moderator")
def new_campaign():
    form = CampaignForm()
    if form.validate_on_submit():
        try:
            campaign = packs.create_campaign(
                name=form.name.data, kind=form.kind.data, description=form.description.data or "", client_name=form.client_name.data or "",
                partner_token=form.partner_token.data or "", actor_id=current_user.id, now=utcnow(),
            )
        except labeling_errors.LabelingError as error:
            show_domain_error(form, error)
        else:
            flash_message(_("Campaign %(name)s is created. Add its first pack.", name=campaign.name))
            return redirect_to(url_for("labeling.new_pack", campaign_id=campaign.id))
    return render_page_or_fragment("labeling/campaign_form.html", "labeling/fragments/campaign_form.html", status=form_status(form), form=form)


@bp.route("/manage/campaigns/<int:campaign_id>/packs/new", methods=["GET", "POST"])
@role_required("moderator")
def new_pack(campaign_id: int):
    campaign = packs.get_campaign(campaign_id)
    if campaign is None:
        abort(404)
    form = PackForm()
    if form.validate_on_submit():
        try:
            pack = packs.create_pack(campaign.id, form.settings(), actor_id=current_user.id, now=utcnow())
        except labeling_errors.LabelingNotFound:
            abort(404)
        except labeling_errors.LabelingError as error:
            show_domain_error(form, error)
        else:
            flash_message(_("Pack %(name)s is created. Upload its items.", name=pack.name))
            return redirect_to(url_for("labeling.upload_items", slug=pack.slug))
    return render_page_or_fragment(
        "labeling/pack_form.html", "labeling/fragments/pack_form.html", status=form_status(form), form=form, campaign=campaign
    )


def _upload_name(name: str | None) -> str | None:
    """A browser's file name reduced to its last part; None for names we will not write."""
    if not name:
        return None
    base = Path(name.replace("\\", "/")).name
    if not base or base.startswith(".") or "\x00" in base or len(base) > 200:
        return None
    return base


@bp.route("/manage/packs/<slug>/items", methods=["GET", "POST"])
@role_required("moderator")
def upload_items(slug: str):
    pack = _pack_or_404(slug)
    form = UploadForm()
    report = None
    if form.validate_on_submit():
        items_name = _upload_name(form.items.data.filename) or ""
        suffix = Path(items_name).suffix.lower()
        if suffix not in UPLOAD_SUFFIXES:
            form.items.errors = [*form.items.errors, _("The items file must be .jsonl or .csv.")]
        else:
            with tempfile.TemporaryDirectory(prefix="sapien-upload-") as scratch:
                folder = Path(scratch)
                items_path = folder / f"items{suffix}"
                form.items.data.save(items_path)
                media_dir = folder / "media"
                media_dir.mkdir()
                for upload in form.media.data or []:
                    name = _upload_name(getattr(upload, "filename", None))
                    if name:
                        upload.save(media_dir / name)
                try:
                    report = imports.import_items(pack.id, items_path, media_dir=media_dir, now=utcnow(), by_basename=True)
                except labeling_errors.LabelingError as error:
                    show_domain_error(form, error)
            if report is not None:
                if report.imported:
                    flash_message(_("%(count)s item(s) imported.", count=report.imported))
                elif not report.problems:
                    flash_message(_("The file holds no items: nothing was imported."), "error")
                if not report.problems:
                    return redirect_to(url_for("labeling.upload_items", slug=pack.slug))
    status = 422 if request.method == "POST" and (form.errors or form.form_errors or (report and report.problems)) else 200
    counts = packs.pack_counts([pack.id]).get(pack.id, packs.PackCounts())
    return render_page_or_fragment(
        "labeling/upload.html", "labeling/fragments/upload.html", status=status, form=form, pack=pack, report=report, counts=counts,
        formats=plain_answers.PLAIN_FORMATS, columns=plain_answers.example_columns(pack.task_type),
    )


@bp.post("/manage/packs/<slug>/publish")
@role_required("moderator")
def publish(slug: str):
    """Open a draft pack to members (refused, with the reason, while it has no items to label)."""
    pack = _pack_or_404(slug)
    if not EmptyForm().validate_on_submit():
        abort(400)
    try:
        packs.publish_pack(pack.id, now=utcnow())
    except labeling_errors.LabelingError as error:
        flash_message(str(error.message), "error")
    else:
        flash_message(_("%(pack)s is published: members can start on it.", pack=pack.name))
    return redirect_to(safe_next_url(url_for("labeling.upload_items", slug=pack.slug)))


@bp.get("/manage/items-examples/<task_type>.csv")
@role_required("moderator")
def items_example(task_type: str):
    """An example items file for a task type, made from the same definitions the import reads."""
    if task_type not in plain_answers.PLAIN_FORMATS:
        abort(404)
    response = Response(plain_answers.example_csv(task_type), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="example-{task_type}.csv"'
    return response


@bp.post("/manage/packs/<slug>/status")
@role_required("moderator")
def pack_status(slug: str):
    pack = _pack_or_404(slug)
    form = PackStatusForm()
    if not form.validate():
        flash_message(_("Choose open, paused or closed."), "error")
    else:
        try:
            packs.set_pack_status(pack.id, form.status.data, now=utcnow())
        except labeling_errors.LabelingError as error:
            flash_message(str(error.message), "error")
        else:
            flash_message(_("%(pack)s is now %(status)s.", pack=pack.name, status=STATUS_LABELS[form.status.data]))
    return redirect_to(url_for("labeling.manage"))


# --- media --------------------------------------------------------------------------------------

@bp.get("/media/<int:media_id>")
@login_required
def media(media_id: int):
    found = labeling_access.media_for_viewer(media_id, current_user.id, is_moderator=current_user.has_role("moderator"), now=utcnow())
    if found is None and can_review(current_user.id):
        found = packs.get_media(media_id)
    if found is None:
        abort(404)
    path = labeling_access.media_path(found)
    if not path.is_file():
        abort(404)
    response = send_file(path, mimetype=found.content_type, conditional=True, max_age=3600, etag=found.sha256)
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
