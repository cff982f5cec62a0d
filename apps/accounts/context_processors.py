from apps.accounts.permissions import Perm, has_perm


def tenancy(request):
    tenant = getattr(request, "tenant", None)
    if tenant is None or not request.user.is_authenticated:
        return {}
    membership = tenant.membership
    return {
        "tenant": tenant,
        "can": {perm.value: has_perm(membership, perm) for perm in Perm},
    }
