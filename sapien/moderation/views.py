from __future__ import annotations

from flask import Blueprint, abort, url_for
from flask_babel import gettext as _
from flask_login import current_user

from sapien.queue import list_jobs, reconcile, retry_failed_job
from sapien.web import flash_message, redirect_to, render_page_or_fragment, role_required

bp = Blueprint("moderation", __name__, url_prefix="/moderation")


@bp.get("/jobs")
@role_required("moderator")
def jobs():
    return render_page_or_fragment("moderation/jobs.html", "moderation/fragments/jobs_table.html", jobs=list_jobs())


@bp.post("/jobs/<job_id>/retry")
@role_required("moderator")
def retry_job(job_id: str):
    if not retry_failed_job(job_id):
        abort(404)
    flash_message(_("Job %(job)s is queued again.", job=job_id))
    return redirect_to(url_for("moderation.jobs"))


@bp.post("/jobs/reconcile")
@role_required("moderator")
def reconcile_jobs():
    counts = reconcile()
    flash_message(_("Checked for pending work: %(count)d job(s) re-enqueued or already queued.", count=sum(counts.values())))
    return redirect_to(url_for("moderation.jobs"))


@bp.context_processor
def _moderator():
    return {"is_moderator": current_user.is_authenticated and current_user.has_role("moderator")}
