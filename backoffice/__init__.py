"""The customer admin (``/admin/``): each organization's admins and managers see only their organization."""
