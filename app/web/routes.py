"""The console's URL map under /ui/."""

from __future__ import annotations

from starlette.responses import RedirectResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from app.web import admin, views
from app.web.render import STATIC
from app.web.views import page


def routes() -> list:
    async def to_console(request):
        return RedirectResponse("/ui/", status_code=307)

    get, post, both = ["GET", "HEAD"], ["POST"], ["GET", "HEAD", "POST"]
    return [
        Route("/ui", to_console),
        Mount("/ui", routes=[
            Mount("/static", app=StaticFiles(directory=str(STATIC)), name="ui-static"),
            Route("/", page(views.domains), methods=get),
            Route("/login", page(views.login, public=True), methods=both),
            Route("/logout", page(views.logout, public=True), methods=post),
            Route("/d/{domain}", page(views.domain), methods=get),
            Route("/d/{domain}/search", page(views.search), methods=get),
            Route("/d/{domain}/r/{repository}", page(views.repository), methods=get),
            Route("/d/{domain}/r/{repository}/connect", page(views.connect), methods=both),
            Route("/d/{domain}/r/{repository}/package", page(views.package), methods=get),
            Route("/d/{domain}/r/{repository}/package/origin", page(views.origin), methods=post),
            Route("/d/{domain}/r/{repository}/version", page(views.version), methods=get),
            Route("/d/{domain}/r/{repository}/version/action", page(views.version_action), methods=post),
            Route("/admin", page(admin.users), methods=both),
            Route("/admin/users/{name}", page(admin.user), methods=get),
            Route("/admin/users/{name}/action", page(admin.user_action), methods=post),
            Route("/admin/groups", page(admin.groups), methods=both),
            Route("/admin/groups/{name}", page(admin.group), methods=get),
            Route("/admin/groups/{name}/action", page(admin.group_action), methods=post),
            Route("/admin/roles", page(admin.roles_page), methods=get),
        ]),
    ]
