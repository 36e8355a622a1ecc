"""PostgreSQL: routing rows belong to the organization of their project, task and qualification, and a lease's
task belongs to the lease's project. See ``labeling/db.py``."""

from django.db import migrations

from labeling.db import composite_foreign_keys

SAME_ORG_QUALIFICATION = "(organization_id, qualification_id)", "routing_qualification (organization_id, id)"

CONSTRAINTS = [
    ("routing_annotatorqualification", "annotatorqual_same_org_fk", *SAME_ORG_QUALIFICATION),
    ("routing_projectrequirement", "projectreq_same_org_qualification_fk", *SAME_ORG_QUALIFICATION),
    (
        "routing_projectrequirement",
        "projectreq_same_org_project_fk",
        "(organization_id, project_id)",
        "labeling_project (organization_id, id)",
    ),
    ("routing_taskrequirement", "taskreq_same_org_qualification_fk", *SAME_ORG_QUALIFICATION),
    (
        "routing_taskrequirement",
        "taskreq_same_org_task_fk",
        "(organization_id, task_id)",
        "labeling_task (organization_id, id)",
    ),
    (
        "routing_assignment",
        "assignment_same_org_project_fk",
        "(organization_id, project_id)",
        "labeling_project (organization_id, id)",
    ),
    ("routing_assignment", "assignment_task_in_project_fk", "(project_id, task_id)", "labeling_task (project_id, id)"),
]


class Migration(migrations.Migration):
    dependencies = [("routing", "0001_initial"), ("labeling", "0003_routing_state")]

    operations = [composite_foreign_keys(CONSTRAINTS)]
