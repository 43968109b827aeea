"""An upload action with the published plugins' shape, on upstream's ``BaseUploadAction``.

Five steps; four carry a proportion (summing to 100, as the built-in upload steps' do) and one
(``scan_files``) none, so it logs without ever reporting progress.  ``initialize`` logs before its
first progress update and, like upstream's model-upload step, looks up the job it runs in only when
the run has a job id.  ``scan_files`` stages a file list under ``os.getcwd()`` (as several published
plugins write their temporary files) and ``cleanup`` removes it.
"""

from __future__ import annotations

import os
import time
import uuid

from pydantic import BaseModel, Field
from synapse_sdk.plugins.actions.upload import BaseUploadAction, UploadContext
from synapse_sdk.plugins.actions.upload.log_messages import UploadLogMessageCode
from synapse_sdk.plugins.steps import BaseStep, StepRegistry, StepResult

from .log_messages import StepUploadLogMessageCode as Code


class StepUploadParams(BaseModel):
    name: str = "step-upload"
    files: int = Field(default=6, ge=1, le=1000)
    delay: float = Field(default=0.25, ge=0, le=5, description="seconds per file, so the run lasts")


class _Step(BaseStep[UploadContext]):
    step_name = ""
    proportion = 0

    @property
    def name(self) -> str:
        return self.step_name

    @property
    def progress_weight(self) -> float:
        return self.proportion / 100

    @property
    def progress_proportion(self) -> int:
        return self.proportion


class InitializeStep(_Step):
    step_name, proportion = "initialize", 4

    def execute(self, context: UploadContext) -> StepResult:
        context.log_message(UploadLogMessageCode.UPLOAD_INITIALIZED)  # before any progress
        job_id = context.runtime_ctx.job_id
        client = context.runtime_ctx.client
        if job_id and client is not None:  # what upstream's own steps do with ctx.job_id
            job = client.get_job(job_id)
            context.log_message(Code.JOB_FOUND, job_id=job_id, status=job.get("status"))
        context.set_progress(1, 1)
        return StepResult(success=True)


class ScanFilesStep(_Step):
    step_name, proportion = "scan_files", 0

    def execute(self, context: UploadContext) -> StepResult:
        count = context.params["files"]
        context.log_message(Code.SCAN_STARTED, count=count)
        staged = os.path.join(os.getcwd(), f".step-upload-{uuid.uuid4().hex}.lst")
        with open(staged, "w") as fh:
            fh.writelines(f"file-{i}.jpg\n" for i in range(count))
        context.log_message(Code.SCAN_STAGED)
        return StepResult(success=True, data={"staged": staged}, rollback_data={"staged": staged})

    def rollback(self, context: UploadContext, result: StepResult) -> None:
        staged = result.rollback_data.get("staged")
        if staged and os.path.exists(staged):
            os.unlink(staged)


class UploadFilesStep(_Step):
    step_name, proportion = "upload_files", 56

    def execute(self, context: UploadContext) -> StepResult:
        count, delay = context.params["files"], context.params["delay"]
        context.log_message(UploadLogMessageCode.UPLOAD_FILES_UPLOADING, count=count)
        context.set_progress(0, count)
        for i in range(count):
            time.sleep(delay)
            context.uploaded_files.append({"name": f"file-{i}.jpg"})
            context.set_progress(i + 1, count)
        context.log_message(Code.SLOW_FILE, name="file-0.jpg")
        context.log_message(UploadLogMessageCode.UPLOAD_FILES_COMPLETED, count=count)
        return StepResult(success=True)


class GenerateDataUnitsStep(_Step):
    step_name, proportion = "generate_data_units", 36

    def execute(self, context: UploadContext) -> StepResult:
        files = context.uploaded_files
        for i, item in enumerate(files):
            time.sleep(context.params["delay"] / 2)
            context.data_units.append({"id": i, "file": item["name"]})
            context.set_progress(i + 1, len(files))
        context.log_message(Code.UNITS_CREATED, count=len(context.data_units))
        return StepResult(success=True)


class CleanupStep(_Step):
    step_name, proportion = "cleanup", 4

    def execute(self, context: UploadContext) -> StepResult:
        for result in context.step_results:
            staged = result.data.get("staged")
            if staged and os.path.exists(staged):
                os.unlink(staged)
        context.log_message(UploadLogMessageCode.UPLOAD_COMPLETED)
        return StepResult(success=True)


class UploadAction(BaseUploadAction[StepUploadParams]):
    action_name = "upload"
    params_model = StepUploadParams

    def setup_steps(self, registry: StepRegistry[UploadContext]) -> None:
        registry.register(InitializeStep())
        registry.register(UploadFilesStep())
        registry.register(GenerateDataUnitsStep())
        registry.register(CleanupStep())
        registry.insert_after("initialize", ScanFilesStep())  # as published plugins add theirs
