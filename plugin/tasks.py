"""Background jobs as QgsTasks, and a runner that keeps only the newest request of a kind.

A job is a plain function `job(progress, is_canceled) -> result` built on the main thread from copied data (see
`synthesis_jobs` and `detect_jobs`): it never touches QgsProject, layers or widgets. `run()` stores any exception;
`finished()` (main thread) hands the outcome to the runner, which drops results of requests that a newer one
replaced. `run()` returns False only for a failure: QGIS announces every terminated task as "Task failed", so a
canceled job ends as complete with "(canceled)" in its description.
"""

import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qgis.core import Qgis, QgsApplication, QgsMessageLog, QgsTask
from qgis.PyQt import sip

from ..core.errors import Canceled
from . import LOG_TAG


@dataclass
class TaskOutcome:
    """What a finished task produced: exactly one of `result`, `error`, or `canceled` is meaningful."""

    token: int
    result: Any = None
    error: BaseException | None = None
    details: str = ""
    canceled: bool = False


class CoreTask(QgsTask):
    def __init__(self, description: str, job: Callable, on_finished: Callable[["CoreTask", bool], None]):
        super().__init__(description, QgsTask.CanCancel)
        self.job = job
        self.on_finished = on_finished
        self.result = None
        self.error: BaseException | None = None
        self.details = ""
        self.canceled = False

    def run(self) -> bool:
        try:
            self.result = self.job(self.setProgress, self.isCanceled)
        except Canceled:
            self.canceled = True
        except Exception as error:  # noqa: BLE001 (an exception escaping run() takes QGIS down)
            self.error = error
            self.details = traceback.format_exc()
            return False
        self.canceled = self.canceled or self.isCanceled()
        if self.canceled:
            self.setDescription(f"{self.description()} (canceled)")
        return True

    def finished(self, ok: bool) -> None:  # noqa: FBT001 (QGIS's signature)
        self.on_finished(self, ok)


class LatestRequestRunner:
    """Runs one kind of job; a new request cancels the running one and makes its result stale.

    `on_outcome(outcome)` is called on the main thread for every request that is still the newest; for a stale one
    `discard(result)` is called instead so the job's files can be removed. When `owner` (the widget showing the
    outcome) has been deleted meanwhile (plugin unloaded), results are discarded too.
    """

    def __init__(
        self,
        on_outcome: Callable[[TaskOutcome], None],
        discard: Callable[[Any], None] | None = None,
        task_manager=None,
        owner=None,
    ):
        self.on_outcome = on_outcome
        self.discard = discard
        self.owner = owner
        self.task_manager = task_manager or QgsApplication.taskManager()
        self.latest_token = 0
        self.running: dict[int, CoreTask] = {}

    @property
    def busy(self) -> bool:
        return bool(self.running)

    def submit(self, description: str, job: Callable) -> CoreTask:
        """Start `job`; the returned task carries `token` and emits `progressChanged` for progress bars."""
        self.latest_token += 1
        token = self.latest_token
        for older in list(self.running.values()):
            older.cancel()
        task = CoreTask(description, job, lambda finished_task, ok: self._finished(token, finished_task, ok))
        task.token = token
        self.running[token] = task
        self.task_manager.addTask(task)
        return task

    def cancel(self) -> None:
        """Cancel the running request; its outcome arrives as canceled and leaves nothing behind, even when its job
        had already returned and only the main thread's `finished` was still to come."""
        for task in list(self.running.values()):
            task.canceled = True
            task.cancel()

    def _finished(self, token: int, task: CoreTask, ok: bool) -> None:
        self.running.pop(token, None)
        stale = token != self.latest_token or (self.owner is not None and sip.isdeleted(self.owner))
        if stale and task.error is not None:  # nobody will show it
            QgsMessageLog.logMessage(f"{task.description()} failed:\n{task.details}", LOG_TAG, Qgis.Warning)
        # not ok without an error: canceled while queued (QGIS terminates it without calling run)
        canceled = task.error is None and (task.canceled or not ok)
        if stale or canceled:
            if task.result is not None and self.discard is not None:
                self.discard(task.result)
            if stale:
                return
        outcome = TaskOutcome(
            token=token,
            result=task.result if ok and not canceled else None,
            error=task.error,
            details=task.details,
            canceled=canceled,
        )
        self.on_outcome(outcome)
