from django.contrib import admin
from django.urls import path

admin.site.site_header = "EasyRelance — administration"
admin.site.site_title = "EasyRelance"
admin.site.index_title = "Back-office"

urlpatterns = [
    path("admin/", admin.site.urls),
]
