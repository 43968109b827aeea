# KubeRay starts Ray with `bash -lc`; a login shell's /etc/profile resets PATH and drops the image's venv
# (/opt/synapse/venv/bin, where `ray` is). Mounted at /etc/profile.d/ so every login shell gets it back.
export PATH="/opt/synapse/venv/bin:$PATH"
