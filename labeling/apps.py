from typing import Any

from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "labeling"
    verbose_name = "Labeling"

    def ready(self) -> None:
        # Imported here, not at the top: an AppConfig module is imported before the app registry is ready, and these
        # modules import models.
        from django.contrib.auth.signals import user_logged_in, user_login_failed

        from labeling.logins import login_failure_record, login_success_record
        from labeling.tenancy import organization_record_at_sign_in

        def failed(sender: Any, credentials: dict[str, Any], request: Any = None, **kwargs: Any) -> None:
            login_failure_record(request, str(credentials.get("username") or ""))

        def succeeded(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
            login_success_record(request, user.get_username())
            if request is not None and hasattr(request, "session"):
                organization_record_at_sign_in(request, user)

        user_login_failed.connect(failed, weak=False, dispatch_uid="concord-login-failed")
        user_logged_in.connect(succeeded, weak=False, dispatch_uid="concord-login-succeeded")
