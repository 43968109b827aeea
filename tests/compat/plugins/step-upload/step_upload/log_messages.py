"""The plugin's own message codes, registered as upstream's plugins register theirs."""

from __future__ import annotations

from synapse_sdk.plugins.log_messages import LogMessageCode, register_log_messages
from synapse_sdk.plugins.models.logger import LogLevel


class StepUploadLogMessageCode(LogMessageCode):
    SCAN_STARTED = ("STEP_UPLOAD_SCAN_STARTED", LogLevel.INFO)
    SCAN_STAGED = ("STEP_UPLOAD_SCAN_STAGED", LogLevel.INFO)
    JOB_FOUND = ("STEP_UPLOAD_JOB_FOUND", LogLevel.INFO)
    UNITS_CREATED = ("STEP_UPLOAD_UNITS_CREATED", LogLevel.SUCCESS)
    SLOW_FILE = ("STEP_UPLOAD_SLOW_FILE", LogLevel.WARNING)


register_log_messages({
    StepUploadLogMessageCode.SCAN_STARTED: {"en": "Scanning {count} files", "ko": "{count}개 파일 검사 중"},
    StepUploadLogMessageCode.SCAN_STAGED: "Staged the file list in the working directory",
    StepUploadLogMessageCode.JOB_FOUND: "Running in job {job_id} ({status})",
    StepUploadLogMessageCode.UNITS_CREATED: "Created {count} data units",
    StepUploadLogMessageCode.SLOW_FILE: "File {name} took long",
})
