// The admin's upload (api/pages/admin.py): the file's bytes to POST /admin/import?name=…, with the
// upload's progress; the answer (a page) replaces the result section.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var form = document.querySelector("form[data-upload]");
  if (!form) return;
  var bar = document.getElementById("upload-progress");
  var state = document.getElementById("upload-state");
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var file = document.getElementById("file").files[0];
    if (!file) return;
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    bar.hidden = false;
    bar.value = 0;
    state.textContent = "上传中 Uploading…";
    var xhr = new XMLHttpRequest();
    xhr.open("POST", "/admin/import?name=" + encodeURIComponent(file.name));
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) bar.value = Math.round(100 * e.loaded / e.total);
    });
    xhr.upload.addEventListener("load", function () {
      bar.value = 100;
      state.textContent = "导入中 Importing…";
    });
    xhr.addEventListener("load", function () {
      var answer = new DOMParser().parseFromString(xhr.responseText, "text/html");
      var found = answer.getElementById("import-result") || answer.querySelector("main");
      var here = document.getElementById("import-result");
      here.replaceChildren.apply(here, Array.prototype.slice.call(found.childNodes));
      state.textContent = xhr.status < 300 ? "完成 Done" : "未完成 Stopped (" + xhr.status + ")";
      button.disabled = false;
      form.reset();
    });
    xhr.addEventListener("error", function () {
      state.textContent = "上传失败 The upload failed";
      button.disabled = false;
    });
    xhr.send(file);
  });
});
